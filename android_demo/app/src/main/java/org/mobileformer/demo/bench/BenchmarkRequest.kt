package org.mobileformer.demo.bench

/** Which runtime path measures the model. */
enum class EngineChoice(val id: String) {
    /** The native core when this build has it, else the AAR. */
    AUTO("auto"),

    /** native/mfbench through JNI: latency, and per-operator times with the event tracer. */
    MFBENCH("mfbench"),

    /** org.pytorch.executorch.Module from the release AAR: whole-model latency only. */
    AAR("aar");

    companion object {
        fun parse(id: String?): EngineChoice =
            entries.firstOrNull { it.id == id?.trim()?.lowercase() }
                ?: throw BenchmarkException("unknown engine '$id' (auto, mfbench or aar)")
    }
}

/** One benchmark run: what to measure and how. */
data class BenchmarkRequest(
    val modelPath: String,
    val iterations: Int = 50,
    val warmup: Int = 10,
    /** XNNPACK worker threads; 0: [threadCount]'s default. */
    val threads: Int = 0,
    /** Report row label; empty: the model file name without `.pte`. */
    val label: String = "",
    val engine: EngineChoice = EngineChoice.AUTO,
    /** Where to write the ETDump (native core with event tracer only); null: none. */
    val etdumpPath: String? = null,
) {
    /**
     * The worker count every engine runs with and writes: [threads], or for 0 half the
     * processors (the AAR's own default, at least 1). Resolved here, not by each runtime,
     * because the AAR and the native core default to different counts.
     */
    fun threadCount(processors: Int = Runtime.getRuntime().availableProcessors()): Int =
        if (threads > 0) threads else maxOf(1, processors / 2)

    fun validate() {
        if (modelPath.isBlank()) throw BenchmarkException("no model given")
        if (iterations < 1) throw BenchmarkException("iterations must be at least 1, got $iterations")
        if (warmup < 0) throw BenchmarkException("warmup must not be negative, got $warmup")
        if (threads < 0) throw BenchmarkException("threads must not be negative, got $threads")
    }
}
