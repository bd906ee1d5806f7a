// Runs android_demo's AarEngine on the JVM against the fake Module and prints, as
// one JSON object, what the engine did: tests/apps/test_android_jvm.py asserts on it.
// Usage: AarEngineProbeKt <model.pte> <iterations> <warmup> <threads> <profiling AAR: true|false> [etdump path]
import java.io.File
import org.json.JSONArray
import org.json.JSONObject
import org.mobileformer.demo.bench.AarEngine
import org.mobileformer.demo.bench.BenchmarkRequest
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor

fun main(args: Array<String>) {
    Module.profiling = args[4].toBooleanStrict()
    val request = BenchmarkRequest(args[0], iterations = args[1].toInt(), warmup = args[2].toInt(),
                                   threads = args[3].toInt(), etdumpPath = args.getOrNull(5))
    val result = try {
        JSONObject(AarEngine.run(request))
    } catch (e: Exception) {
        println(JSONObject().put("error", e.message).toString())
        return
    }
    val module = Module.loaded.single()
    val inputs = module.calls.flatMap { it.first }.distinct()
    val tensor = Tensor.made.firstOrNull()
    val report = JSONObject()
        .put("arguments_per_call", JSONArray(module.calls.map { it.first.size }))
        .put("tensors_before_each_call", JSONArray(module.calls.map { it.second }))
        .put("distinct_inputs", inputs.size)
        .put("tensors_made", Tensor.made.size)
        .put("shape", JSONArray(tensor?.shape?.toList() ?: emptyList<Long>()))
        .put("first_values", JSONArray(tensor?.data?.take(4)?.map { it.toDouble() } ?: emptyList<Double>()))
        .put("elements", tensor?.data?.size ?: 0)
        .put("threads", module.threads)
        .put("destroyed", module.destroyed)
        .put("processors", Runtime.getRuntime().availableProcessors())
        .put("etdumps", JSONArray(Module.etdumps))
        .put("result", result)
    println(report.toString())
}
