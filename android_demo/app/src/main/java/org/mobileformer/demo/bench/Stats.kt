package org.mobileformer.demo.bench

/** Whole-model latency summary, as in the JSON's `latency_ms`. */
data class Latency(val p50: Double, val p90: Double, val mean: Double, val min: Double, val max: Double)

object Stats {
    /** Linear interpolation between closest ranks (numpy's default, as native/mfbench), q in [0, 1]. */
    fun percentile(values: List<Double>, q: Double): Double {
        if (values.isEmpty()) return 0.0
        val sorted = values.sorted()
        val pos = q * (sorted.size - 1)
        val lo = pos.toInt()
        val hi = minOf(lo + 1, sorted.size - 1)
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo)
    }

    fun latency(samples: List<Double>): Latency {
        if (samples.isEmpty()) return Latency(0.0, 0.0, 0.0, 0.0, 0.0)
        return Latency(
            p50 = percentile(samples, 0.5),
            p90 = percentile(samples, 0.9),
            mean = samples.sum() / samples.size,
            min = samples.min(),
            max = samples.max(),
        )
    }
}
