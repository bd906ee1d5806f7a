// Runs android_demo's AarEngine on the JVM against the fake Module and prints, as
// one JSON object, what the engine did: tests/apps/test_android_jvm.py asserts on it.
// Usage: AarEngineProbeKt <model.pte> <iterations> <warmup>
import java.io.File
import org.json.JSONArray
import org.json.JSONObject
import org.mobileformer.demo.bench.AarEngine
import org.mobileformer.demo.bench.BenchmarkRequest
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor

fun main(args: Array<String>) {
    val request = BenchmarkRequest(args[0], iterations = args[1].toInt(), warmup = args[2].toInt(), threads = 2)
    val result = JSONObject(AarEngine.run(request))
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
        .put("result", result)
    println(report.toString())
}
