package org.mobileformer.demo

import android.app.Activity
import android.os.Bundle
import android.util.Log
import android.view.WindowManager
import android.widget.TextView
import java.io.File
import java.util.Locale
import java.util.concurrent.Executors
import org.mobileformer.demo.bench.BenchmarkEngine
import org.mobileformer.demo.bench.BenchmarkException
import org.mobileformer.demo.bench.BenchmarkRequest
import org.mobileformer.demo.bench.EngineChoice
import org.mobileformer.demo.bench.ModelFiles
import org.mobileformer.demo.bench.ResultSummary

/**
 * Headless benchmark: started by adb, runs one benchmark with no interaction,
 * writes the JSON atomically, logs one line and finishes.
 *
 *   adb shell am start -W -S -n org.mobileformer.demo/.BenchmarkActivity \
 *     --es model /data/local/tmp/mobileformer/x.pte --ei iters 50 --ei threads 4 \
 *     --es out /sdcard/Android/data/org.mobileformer.demo/files/result.json
 *
 * Extras (see [Extras]): model (required), iters, warmup, threads, out, label,
 * engine (auto|mfbench|aar), etdump (boolean). On failure nothing is written to
 * `out`; `<out>.error` gets the message instead, so a waiting script can stop.
 * The log line (tag MobileFormerBench) starts with MFBENCH_RESULT or MFBENCH_ERROR.
 */
class BenchmarkActivity : Activity() {

    object Extras {
        const val MODEL = "model"
        const val ITERS = "iters"
        const val WARMUP = "warmup"
        const val THREADS = "threads"
        const val OUT = "out"
        const val LABEL = "label"
        const val ENGINE = "engine"
        const val ETDUMP = "etdump"
    }

    private val worker = Executors.newSingleThreadExecutor { r -> Thread(r, "mfbench-headless") }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        // Keep the screen on and the app in the foreground while measuring.
        window.addFlags(WindowManager.LayoutParams.FLAG_KEEP_SCREEN_ON)
        val status = TextView(this).apply {
            text = "MobileFormer Bench: headless run…"
            setPadding(48, 96, 48, 48)
        }
        setContentView(status)
        if (savedInstanceState != null) return  // recreated: the first instance's run is still going

        val out = outputFile()
        val request = try {
            parseRequest(out)
        } catch (e: BenchmarkException) {
            fail(out, e.message ?: "bad extras")
            finish()
            return
        }
        worker.execute {
            try {
                File(out.parentFile, out.name + ".error").delete()  // from an earlier run
                val engine = BenchmarkEngine.pick(request.engine)
                Log.i(TAG, "running ${request.modelPath} with ${engine.title}: ${request.iterations} runs, " +
                    "${request.warmup} warm-up, threads ${request.threadCount()}")
                val json = engine.run(request)
                ModelFiles.writeAtomic(out, json)
                val summary = ResultSummary.parse(json, ModelFiles.manifestFor(File(request.modelPath)))
                Log.i(
                    TAG,
                    String.format(
                        Locale.ROOT, "MFBENCH_RESULT out=%s p50_ms=%.3f p90_ms=%.3f operators=%d engine=%s",
                        out.path, summary.latency.p50, summary.latency.p90, summary.operators.size,
                        engine.title,
                    ),
                )
            } catch (e: BenchmarkException) {
                fail(out, e.message ?: "benchmark failed")
            } catch (e: Throwable) {
                fail(out, "unexpected error: $e")
            } finally {
                runOnUiThread { finish() }
            }
        }
    }

    override fun onDestroy() {
        worker.shutdown()
        super.onDestroy()
    }

    private fun outputFile(): File {
        // First, always: on a fresh install /sdcard/Android/data/<package>/files does not
        // exist and the app may not mkdirs() it itself (scoped storage); this call has the
        // system create it, so the result (or the .error file run_benchmark.sh waits for)
        // can be written under it.
        val appDir = getExternalFilesDir(null)
        val given = intent.getStringExtra(Extras.OUT)
        if (!given.isNullOrBlank()) return File(given)
        val model = intent.getStringExtra(Extras.MODEL).orEmpty()
        val stem = File(model).name.removeSuffix(".pte").ifBlank { "result" }
        return File(appDir ?: filesDir, "results/$stem.json")
    }

    private fun parseRequest(out: File): BenchmarkRequest {
        val extras = intent.extras ?: throw BenchmarkException("no extras: pass at least --es model <path.pte>")
        val model = extras.getString(Extras.MODEL)
        if (model.isNullOrBlank()) throw BenchmarkException("missing extra 'model' (--es model <path.pte>)")
        val engine = EngineChoice.parse(extras.getString(Extras.ENGINE) ?: EngineChoice.AUTO.id)
        val wantEtdump = extras.getBoolean(Extras.ETDUMP, false)
        val request = BenchmarkRequest(
            modelPath = model,
            iterations = intExtra(extras, Extras.ITERS, 50),
            warmup = intExtra(extras, Extras.WARMUP, 10),
            threads = intExtra(extras, Extras.THREADS, 0),
            label = extras.getString(Extras.LABEL).orEmpty(),
            engine = engine,
            etdumpPath = if (wantEtdump) File(out.parentFile, out.nameWithoutExtension + ".etdp").path else null,
        )
        request.validate()
        return request
    }

    /** Accepts --ei (int) and --es (string) so a typo in the adb line fails loudly. */
    private fun intExtra(extras: Bundle, key: String, default: Int): Int {
        if (!extras.containsKey(key)) return default
        @Suppress("DEPRECATION")
        return when (val v = extras.get(key)) {
            is Int -> v
            is Long -> v.toInt()
            is String -> v.trim().toIntOrNull() ?: throw BenchmarkException("extra '$key' is not an integer: '$v'")
            else -> throw BenchmarkException("extra '$key' is not an integer (use --ei $key N)")
        }
    }

    private fun fail(out: File, message: String) {
        Log.e(TAG, "MFBENCH_ERROR $message")
        try {
            ModelFiles.writeAtomic(File(out.parentFile, out.name + ".error"), message + "\n")
        } catch (e: BenchmarkException) {
            Log.e(TAG, "MFBENCH_ERROR cannot write the error file either: ${e.message}")
        }
    }

    companion object {
        const val TAG = "MobileFormerBench"
    }
}
