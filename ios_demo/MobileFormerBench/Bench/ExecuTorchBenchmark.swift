import Foundation

/// ExecuTorch engine: the shared C++ core (native/mfbench) through MFBenchBridge.
/// With the release Swift PM frameworks the core is built without the event
/// tracer: whole-model latency only, `operators` empty (README).
enum ExecuTorchBenchmark {
    struct Settings {
        var iterations = 50
        var warmup = 10
        var threads = 0
        var label = ""
        var etdump: URL?
    }

    static var perOperator: Bool { MFBenchBridge.hasEventTracer }

    /// Runs the core on `model` (blocking: call off the main thread) and returns the JSON.
    static func run(model: URL, settings: Settings) throws -> String {
        if settings.etdump != nil && !perOperator {
            throw BenchError.message("an ETDump needs ExecuTorch built with the event tracer (README)")
        }
        return try MFBenchBridge.runBenchmark(
            modelPath: model.path,
            iterations: settings.iterations,
            warmup: settings.warmup,
            threads: settings.threads,
            etdumpPath: settings.etdump?.path,
            label: settings.label.isEmpty ? nil : settings.label,
            deviceName: nil)
    }
}
