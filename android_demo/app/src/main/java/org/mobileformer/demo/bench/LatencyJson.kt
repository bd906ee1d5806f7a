package org.mobileformer.demo.bench

import java.time.Instant
import java.time.ZoneOffset
import java.time.format.DateTimeFormatter
import java.util.Locale

/** The device as the result records it (`device` in docs/latency-format.md). */
data class DeviceInfo(val kind: String, val name: String, val os: String, val cpu: String, val cores: Int)

/** The measured file (`artifact`); model/backend/precision are filled from the manifest by quant.report. */
data class Artifact(val file: String, val sha256: String, val sizeBytes: Long)

/**
 * Writes `mobileformer-latency/1` documents (docs/latency-format.md) for the
 * engines that measure in Kotlin. Pure Kotlin (no Android API) and ordered like
 * native/mfbench's to_json(), so both engines' files read the same.
 */
object LatencyJson {
    const val FORMAT = "mobileformer-latency/1"

    private val utc = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss'Z'", Locale.ROOT).withZone(ZoneOffset.UTC)

    fun nowUtc(now: Instant = Instant.now()): String = utc.format(now)

    /**
     * A whole-model-latency-only result: no operators, no blocks. [traced]: measured by a
     * runtime that times every operator (a profiling AAR), [etdump]: its ETDump's file name.
     */
    fun latencyOnly(
        created: String,
        tool: String,
        label: String,
        device: DeviceInfo,
        runtimeVersion: String?,
        artifact: Artifact,
        threads: Int,
        warmup: Int,
        iterations: Int,
        traced: Boolean,
        samplesMs: List<Double>,
        etdump: String? = null,
    ): String {
        require(threads >= 1) { "threads must be the count the runtime ran with, got $threads" }
        val lat = Stats.latency(samplesMs)
        val doc = linkedMapOf<String, Any?>(
            "format" to FORMAT,
            "created" to created,
            "tool" to tool,
            "label" to label,
            "device" to linkedMapOf<String, Any?>(
                "kind" to device.kind, "name" to device.name, "os" to device.os,
                "cpu" to device.cpu, "cores" to device.cores,
            ),
            "runtime" to linkedMapOf<String, Any?>(
                "name" to "executorch", "version" to runtimeVersion?.ifBlank { null }, "compute_units" to null,
            ),
            "artifact" to linkedMapOf<String, Any?>(
                "file" to artifact.file, "sha256" to artifact.sha256, "size_bytes" to artifact.sizeBytes,
                "model" to null, "backend" to null, "precision" to null,
            ),
            "threads" to threads,
            "warmup" to warmup,
            "iterations" to iterations,
            "traced" to traced,
            "latency_ms" to linkedMapOf<String, Any?>(
                "p50" to lat.p50, "p90" to lat.p90, "mean" to lat.mean, "min" to lat.min, "max" to lat.max,
            ),
            "samples_ms" to samplesMs,
            "operators" to emptyList<Any?>(),
            "blocks" to emptyList<Any?>(),
            "etdump" to etdump,
        )
        return write(doc) + "\n"
    }

    /** Serializes maps (keys in iteration order), lists, strings, numbers, booleans and null. */
    fun write(value: Any?): String = StringBuilder().also { append(it, value, 0) }.toString()

    private fun append(out: StringBuilder, value: Any?, depth: Int) {
        when (value) {
            null -> out.append("null")
            is String -> quote(out, value)
            is Boolean -> out.append(value)
            is Int, is Long, is Short, is Byte -> out.append(value.toString())
            is Number -> out.append(number(value.toDouble()))
            is Map<*, *> -> {
                // Top level one key per line; nested objects inline, as native/mfbench writes them.
                val sep = if (depth == 0) ",\n  " else ", "
                out.append(if (depth == 0) "{\n  " else "{")
                value.entries.forEachIndexed { i, (k, v) ->
                    if (i > 0) out.append(sep)
                    quote(out, k.toString())
                    out.append(": ")
                    append(out, v, depth + 1)
                }
                out.append(if (depth == 0) "\n}" else "}")
            }
            is Iterable<*> -> {
                out.append("[")
                value.forEachIndexed { i, v ->
                    if (i > 0) out.append(", ")
                    append(out, v, depth + 1)
                }
                out.append("]")
            }
            is DoubleArray -> append(out, value.toList(), depth)
            else -> throw IllegalArgumentException("cannot write ${value::class.java.name} as JSON")
        }
    }

    /** Milliseconds with a decimal point and at most 6 decimals; NaN/inf become null. */
    fun number(v: Double): String {
        if (v.isNaN() || v.isInfinite()) return "null"
        var s = String.format(Locale.ROOT, "%.6f", v)
        while (s.length > 1 && s.endsWith("0") && s[s.length - 2] != '.') s = s.dropLast(1)
        return s
    }

    private fun quote(out: StringBuilder, s: String) {
        out.append('"')
        for (c in s) {
            when {
                c == '"' -> out.append("\\\"")
                c == '\\' -> out.append("\\\\")
                c == '\n' -> out.append("\\n")
                c == '\r' -> out.append("\\r")
                c == '\t' -> out.append("\\t")
                c < ' ' -> out.append(String.format(Locale.ROOT, "\\u%04x", c.code))
                else -> out.append(c)
            }
        }
        out.append('"')
    }
}
