// Runs android_demo's NativeCoreEngine on the JVM against a stand-in libmfbench_jni (built by
// tests/apps/test_android_jvm.py, whose runBenchmark returns the thread count it was given) and
// prints that, with the processor count, as one JSON object.
// Usage: NativeEngineProbeKt <stand-in .so> <model.pte> <threads>
import org.json.JSONObject
import org.mobileformer.demo.bench.BenchmarkRequest
import org.mobileformer.demo.bench.NativeCoreEngine

fun main(args: Array<String>) {
    System.load(args[0])
    val request = BenchmarkRequest(args[1], iterations = 1, warmup = 0, threads = args[2].toInt())
    println(JSONObject(NativeCoreEngine.run(request)).put("processors", Runtime.getRuntime().availableProcessors()))
}
