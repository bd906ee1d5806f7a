package org.mobileformer.demo.bench

import android.os.Build
import java.io.File
import org.mobileformer.demo.BuildConfig
import org.pytorch.executorch.EValue
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor

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
            request.modelPath, request.iterations, request.warmup, request.threadCount(),
            etdump, request.label, BenchmarkEngine.device().name,
        )
    }
}

/**
 * org.pytorch.executorch.Module from the AAR: whole-model latency, the same
 * `forward` loop as the core's first pass, timed in Kotlin (System.nanoTime around
 * each call, so the JNI crossing is included). The release AAR is built without
 * the event tracer: untraced. An AAR built with EXECUTORCH_ANDROID_PROFILING=ON
 * attaches an ETDumpGen to every Module and its XNNPACK delegate times every
 * operator, so its figures are traced; only such an AAR writes an ETDump
 * (`Module.etdump(path)` returns false otherwise), which is how the engine tells them apart.
 *
 * The input tensor is built once, before timing, with the core's values, and
 * every call gets that same tensor: `forward()` with no arguments would make the
 * JNI layer allocate and fill every input (600 KB for 1x3x224x224) inside the
 * timed region. Its shape is the export manifest's `input.shape` beside the
 * model, else [ForwardInput.DEFAULT_SHAPE].
 */
object AarEngine : BenchmarkEngine {
    override val title = "executorch-android AAR (latency only; traced if a profiling AAR)"
    override val perOperator = false

    override fun run(request: BenchmarkRequest): String {
        request.validate()
        val file = File(request.modelPath)
        if (!file.isFile) throw BenchmarkException("cannot open model ${file.path}: no such file")
        val artifact = ModelFiles.fingerprint(file)
        val created = LatencyJson.nowUtc()

        val module = try {
            Module.load(file.absolutePath, Module.LOAD_MODE_MMAP, request.threadCount())
        } catch (e: Exception) {
            throw BenchmarkException("cannot load ${file.name}: ${e.message}")
        }
        val samples = ArrayList<Double>(request.iterations)
        val traced: Boolean
        try {
            try {
                module.loadMethod("forward")
            } catch (e: Exception) {
                throw BenchmarkException("cannot load method forward of ${file.name}: ${e.message}")
            }
            val shape = ModelFiles.manifestFor(file)?.let(ModelFiles::inputShape) ?: ForwardInput.DEFAULT_SHAPE
            try {
                samples += timeForward(module, ForwardInput.of(shape), request.warmup, request.iterations)
            } catch (e: Exception) {
                throw BenchmarkException("forward failed with input ${shape.joinToString("x")}: ${e.message}")
            }
            traced = writesEtdump(module, request.etdumpPath)
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
            threads = request.threadCount(),
            warmup = request.warmup,
            iterations = request.iterations,
            traced = traced,
            samplesMs = samples,
            etdump = request.etdumpPath?.let { File(it).name },
        )
    }

    /**
     * Whether this AAR traced the runs: only a profiling AAR has an ETDump to write. It is
     * written to [etdumpPath] when one was asked for (an error without the tracer), else
     * to a temporary file that is deleted again.
     */
    private fun writesEtdump(module: Module, etdumpPath: String?): Boolean {
        if (etdumpPath != null) {
            if (!module.etdump(etdumpPath)) {
                throw BenchmarkException(
                    "this AAR has no event tracer, so no ETDump: use an AAR built with " +
                        "EXECUTORCH_ANDROID_PROFILING=ON, or the native core",
                )
            }
            return true
        }
        val probe = File.createTempFile("mfbench-etdump", ".etdp")
        try {
            return module.etdump(probe.path)
        } finally {
            probe.delete()
        }
    }

    /** Milliseconds of each of [iterations] `forward(input)` calls after [warmup] untimed ones. */
    fun timeForward(module: Module, input: EValue, warmup: Int, iterations: Int): List<Double> {
        repeat(warmup) { module.forward(input) }
        return List(iterations) {
            val t0 = System.nanoTime()
            module.forward(input)
            (System.nanoTime() - t0) / 1e6
        }
    }
}

/** The one float input the engines feed `forward`, with native/mfbench's values. */
object ForwardInput {
    /** quant.export's default input (and quant.bench's when there is no manifest). */
    val DEFAULT_SHAPE = longArrayOf(1, 3, 224, 224)

    /** A tensor of [shape] holding [pattern], wrapped for `forward`. */
    fun of(shape: LongArray): EValue {
        val count = shape.fold(1L) { n, d -> n * d }
        require(count in 1..Int.MAX_VALUE) { "bad input shape ${shape.joinToString("x")}" }
        return EValue.from(Tensor.fromBlob(pattern(count.toInt()), shape))
    }

    /** native/mfbench's deterministic input: xorshift32 from 0x2545F491, mapped to [-1, 1). */
    fun pattern(count: Int): FloatArray {
        var state = 0x2545F491
        return FloatArray(count) {
            state = state xor (state shl 13)
            state = state xor (state ushr 17)
            state = state xor (state shl 5)
            (state ushr 8) / 8388608.0f - 1.0f
        }
    }
}
