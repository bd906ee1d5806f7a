package org.mobileformer.demo.bench

import org.mobileformer.demo.BuildConfig

/**
 * The shared C++ benchmark core (native/mfbench) through JNI, in
 * libmfbench_jni.so. That library exists only in builds made with
 * `-PexecutorchAndroidRoot=...` (ExecuTorch built from source); otherwise
 * [available] is false and the app uses [AarEngine].
 */
object NativeBench {
    /** True when libmfbench_jni.so was built into this APK and loads. */
    val available: Boolean by lazy {
        BuildConfig.HAS_NATIVE_CORE && try {
            System.loadLibrary("mfbench_jni")
            true
        } catch (e: UnsatisfiedLinkError) {
            false
        }
    }

    /**
     * Runs `warmup` + `iterations` inferences of the model's `forward` and returns the
     * `mobileformer-latency/1` JSON document (docs/latency-format.md). Per-operator
     * times and the ETDump (when [etdumpPath] is not empty) need [hasEventTracer].
     * Blocks the calling thread for the whole run: call it off the main thread.
     *
     * @throws BenchmarkException with the core's message when the run fails.
     */
    @JvmStatic
    external fun runBenchmark(
        modelPath: String,
        iterations: Int,
        warmup: Int,
        threads: Int,
        etdumpPath: String,
        label: String,
        deviceName: String,
    ): String

    /** Whether the core was compiled against an ExecuTorch with the event tracer. */
    @JvmStatic
    external fun hasEventTracer(): Boolean

    /** The ExecuTorch version the core was built against ("" if unknown). */
    @JvmStatic
    external fun executorchVersion(): String
}
