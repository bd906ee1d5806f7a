package org.mobileformer.demo.bench

import android.os.Build
import java.io.File
import org.mobileformer.demo.BuildConfig
import org.pytorch.executorch.Module

/** A way to time an ExecuTorch program; every engine returns the same JSON format. */
interface BenchmarkEngine {
    /** Shown in the UI and the log. */
    val title: String

    /** Whether results carry per-operator times (needs ExecuTorch's event tracer). */
    val perOperator: Boolean

    /** Runs [request] on the calling (background) thread and returns the JSON document. */
    fun run(request: BenchmarkRequest): String

    companion object {
        val APP_VERSION: String = BuildConfig.VERSION_NAME

        fun pick(choice: EngineChoice): BenchmarkEngine = when (choice) {
            EngineChoice.AUTO -> if (NativeBench.available) NativeCoreEngine else AarEngine
            EngineChoice.MFBENCH ->
                if (NativeBench.available) NativeCoreEngine
                else throw BenchmarkException(
                    "this build has no native core (libmfbench_jni.so): rebuild with " +
                        "-PexecutorchAndroidRoot=<ExecuTorch for Android> (README, \"Per-operator timings\")",
                )
            EngineChoice.AAR -> AarEngine
        }

        /** The engines this APK can run, best first. */
        fun available(): List<EngineChoice> =
            if (NativeBench.available) listOf(EngineChoice.MFBENCH, EngineChoice.AAR) else listOf(EngineChoice.AAR)

        fun device(): DeviceInfo = DeviceInfo(
            kind = "android",
            name = "${Build.MANUFACTURER} ${Build.MODEL}".trim(),
            os = "Android ${Build.VERSION.RELEASE}",
            cpu = if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.S && Build.SOC_MODEL != Build.UNKNOWN) {
                Build.SOC_MODEL
            } else {
                Build.HARDWARE
            },
            cores = Runtime.getRuntime().availableProcessors(),
        )
    }
}

/**
 * native/mfbench through JNI: the same C++ as the host CLI. Latency from an
 * untraced pass; with the event tracer compiled in, per-operator XNNPACK times and
 * the ETDump from a second, traced pass.
 */
object NativeCoreEngine : BenchmarkEngine {
    override val title: String
        get() = if (perOperator) "mfbench core (per-operator)" else "mfbench core (latency only)"
    override val perOperator: Boolean get() = NativeBench.available && NativeBench.hasEventTracer()

    override fun run(request: BenchmarkRequest): String {
        request.validate()
        val etdump = request.etdumpPath.orEmpty()
        if (etdump.isNotEmpty() && !perOperator) {
            throw BenchmarkException("an ETDump needs the native core built with the event tracer")
        }
        return NativeBench.runBenchmark(
            request.modelPath, request.iterations, request.warmup, request.threads,
            etdump, request.label, BenchmarkEngine.device().name,
        )
    }
}

/**
 * org.pytorch.executorch.Module from the release AAR. The AAR's native library is
 * built without the event tracer, so this gives whole-model latency only: the
 * same untraced `forward()` loop as the core's first pass, timed in Kotlin
 * (System.nanoTime around each call; the JNI crossing is included, a few µs).
 * Module.forward() with no arguments feeds the method's sample inputs (ones).
 */
object AarEngine : BenchmarkEngine {
    override val title = "executorch-android AAR (latency only)"
    override val perOperator = false

    override fun run(request: BenchmarkRequest): String {
        request.validate()
        if (request.etdumpPath != null) {
            throw BenchmarkException("the release AAR has no event tracer: no ETDump (use the native core)")
        }
        val file = File(request.modelPath)
        if (!file.isFile) throw BenchmarkException("cannot open model ${file.path}: no such file")
        val artifact = ModelFiles.fingerprint(file)
        val created = LatencyJson.nowUtc()

        val module = try {
            Module.load(file.absolutePath, Module.LOAD_MODE_MMAP, request.threads)
        } catch (e: Exception) {
            throw BenchmarkException("cannot load ${file.name}: ${e.message}")
        }
        val samples = ArrayList<Double>(request.iterations)
        try {
            try {
                module.loadMethod("forward")
            } catch (e: Exception) {
                throw BenchmarkException("cannot load method forward of ${file.name}: ${e.message}")
            }
            try {
                repeat(request.warmup) { module.forward() }
                repeat(request.iterations) {
                    val t0 = System.nanoTime()
                    module.forward()
                    samples.add((System.nanoTime() - t0) / 1e6)
                }
            } catch (e: BenchmarkException) {
                throw e
            } catch (e: Exception) {
                throw BenchmarkException("forward failed: ${e.message}")
            }
        } finally {
            module.destroy()
        }
        return LatencyJson.latencyOnly(
            created = created,
            tool = "android_demo ${BenchmarkEngine.APP_VERSION} (executorch-android AAR)",
            label = request.label.ifBlank { file.name.removeSuffix(".pte") },
            device = BenchmarkEngine.device(),
            runtimeVersion = BuildConfig.EXECUTORCH_VERSION,
            artifact = artifact,
            threads = request.threads,
            warmup = request.warmup,
            iterations = request.iterations,
            samplesMs = samples,
        )
    }
}
