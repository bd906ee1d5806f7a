// Stand-ins for the executorch-android AAR's Module, EValue and Tensor (the
// signatures the app uses, as in ExecuTorch's Module.kt / EValue.kt / Tensor.kt),
// recording what the app does with them.
package org.pytorch.executorch

class Tensor private constructor(val data: FloatArray, val shape: LongArray) {
    companion object {
        /** Every tensor the code under test made, in order. */
        val made = mutableListOf<Tensor>()

        @JvmStatic
        fun fromBlob(data: FloatArray, shape: LongArray): Tensor = Tensor(data, shape).also { made += it }
    }
}

class EValue private constructor(val tensor: Tensor) {
    companion object {
        @JvmStatic
        fun from(tensor: Tensor): EValue = EValue(tensor)
    }
}

open class Module private constructor(val path: String, val threads: Int) {
    /** One entry per forward call: its arguments, and how many tensors existed then. */
    val calls = mutableListOf<Pair<List<EValue>, Int>>()
    var destroyed = false

    open fun forward(vararg inputs: EValue): Array<EValue> {
        calls += inputs.toList() to Tensor.made.size
        return emptyArray()
    }

    open fun loadMethod(methodName: String) {}

    /** As the AAR: true (and the file written) only in a build with EXECUTORCH_ANDROID_PROFILING. */
    open fun etdump(outputPath: String): Boolean {
        etdumps += outputPath
        if (profiling) java.io.File(outputPath).writeBytes(byteArrayOf(1))
        return profiling
    }

    open fun destroy() {
        destroyed = true
    }

    companion object {
        const val LOAD_MODE_MMAP = 1
        val loaded = mutableListOf<Module>()

        /** Whether this fake stands for a profiling AAR (the probe sets it). */
        var profiling = false
        val etdumps = mutableListOf<String>()

        @JvmStatic
        @JvmOverloads
        fun load(modelPath: String?, loadMode: Int = 0, numThreads: Int = 0): Module =
            Module(modelPath.orEmpty(), numThreads).also { loaded += it }
    }
}
