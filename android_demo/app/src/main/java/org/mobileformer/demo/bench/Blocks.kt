package org.mobileformer.demo.bench

/** One operator of a result, as much as the UI needs. */
data class OperatorTime(val index: Int, val name: String, val delegateIndex: Int?, val meanMs: Double)

/** A bar of the chart: a paper block (or an operator type) and its summed time. */
data class BlockTime(val name: String, val ms: Double, val operators: Int)

/**
 * Per-block times from per-operator times (docs/latency-format.md, "Mapping
 * operators to blocks"). Pure Kotlin, no Android API.
 */
object Blocks {
    const val UNMAPPED = "(outside the listed delegates)"

    /**
     * With the manifest's `profiling.delegate_blocks` (one paper-block name per
     * delegate call, in execution order), an operator's `delegate_index` names its
     * block; `mean_ms` is summed per block, blocks in execution order. Operators with
     * no or an out-of-range delegate index are summed under [UNMAPPED].
     */
    fun byBlock(ops: List<OperatorTime>, delegateBlocks: List<String>): List<BlockTime> {
        val sums = LinkedHashMap<String, Pair<Double, Int>>()
        for (op in ops.sortedBy { it.index }) {
            val block = op.delegateIndex?.let { delegateBlocks.getOrNull(it) } ?: UNMAPPED
            val (ms, n) = sums[block] ?: (0.0 to 0)
            sums[block] = (ms + op.meanMs) to (n + 1)
        }
        return sums.map { (name, v) -> BlockTime(name, v.first, v.second) }
    }

    /** Without a manifest: `mean_ms` summed per operator name (XNNPACK kernel type), largest first. */
    fun byOperatorType(ops: List<OperatorTime>): List<BlockTime> =
        ops.groupBy { it.name }
            .map { (name, group) -> BlockTime(name, group.sumOf { it.meanMs }, group.size) }
            .sortedByDescending { it.ms }

    /** [byBlock] when the manifest lists delegate blocks, else [byOperatorType]. */
    fun aggregate(ops: List<OperatorTime>, delegateBlocks: List<String>?): List<BlockTime> =
        if (delegateBlocks.isNullOrEmpty()) byOperatorType(ops) else byBlock(ops, delegateBlocks)
}
