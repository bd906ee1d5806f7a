package org.mobileformer.demo.bench

import java.io.File
import org.json.JSONArray
import org.json.JSONObject

/** What the UI shows of one `mobileformer-latency/1` result. */
data class ResultSummary(
    val json: String,
    val label: String,
    val tool: String,
    val device: String,
    val latency: Latency,
    val iterations: Int,
    val threads: Int,
    /** Whole-model figures from a runtime that times every operator (docs/latency-format.md). */
    val traced: Boolean,
    val operators: List<OperatorTime>,
    /** Per paper block (manifest given) or per operator type. */
    val bars: List<BlockTime>,
    val barsAreBlocks: Boolean,
    val savedTo: File? = null,
) {
    companion object {
        fun parse(json: String, manifest: File?): ResultSummary {
            val doc = JSONObject(json)
            require(doc.optString("format") == LatencyJson.FORMAT) { "not a ${LatencyJson.FORMAT} document" }
            val lat = doc.getJSONObject("latency_ms")
            val opsJson = doc.optJSONArray("operators") ?: JSONArray()
            val ops = (0 until opsJson.length()).map { i ->
                val op = opsJson.getJSONObject(i)
                OperatorTime(
                    index = op.optInt("index", i),
                    name = op.optString("name"),
                    delegateIndex = if (op.isNull("delegate_index")) null else op.getInt("delegate_index"),
                    meanMs = op.optDouble("mean_ms", 0.0),
                )
            }
            val delegateBlocks = manifest?.let { delegateBlocks(it) }
            val device = doc.optJSONObject("device")
            return ResultSummary(
                json = json,
                label = doc.optString("label"),
                tool = doc.optString("tool"),
                device = listOfNotNull(device?.optString("name"), device?.optString("os"))
                    .filter { it.isNotBlank() }.joinToString(", "),
                latency = Latency(
                    lat.getDouble("p50"), lat.getDouble("p90"), lat.getDouble("mean"),
                    lat.getDouble("min"), lat.getDouble("max"),
                ),
                iterations = doc.optInt("iterations"),
                threads = doc.optInt("threads"),
                traced = doc.optBoolean("traced", false),
                operators = ops,
                bars = Blocks.aggregate(ops, delegateBlocks),
                barsAreBlocks = !delegateBlocks.isNullOrEmpty(),
            )
        }

        /** `profiling.delegate_blocks` of an export manifest, or null if it has none. */
        fun delegateBlocks(manifest: File): List<String>? = try {
            val list = JSONObject(manifest.readText()).optJSONObject("profiling")?.optJSONArray("delegate_blocks")
            list?.let { arr -> (0 until arr.length()).map { arr.getString(it) } }
        } catch (e: Exception) {
            null  // an unreadable manifest only costs the block view
        }
    }
}
