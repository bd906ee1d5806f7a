import Foundation

/// Command-line mode for run_benchmark.sh (xcrun devicectl device process launch):
///
///   --headless --model inbox/<run>/x.pte [--iters 50] [--warmup 10] [--threads 4]
///   [--compute-units every|all|cpuOnly|cpuAndGPU|cpuAndNeuralEngine] [--label S]
///   [--out-dir results] [--run-id ID] [--etdump] [--cleanup]
///
/// Paths are relative to Documents unless absolute. Results go to
/// Documents/<out-dir>/<run-id>/: one JSON per run (Core ML: one per compute
/// unit), then status.json ({"ok": true|false, "files": [...], "error": ...})
/// last, which is what the script waits for. --cleanup deletes the model's
/// folder afterwards when it is under Documents/inbox/.
struct HeadlessOptions {
    var model = ""
    var iterations = 50
    var warmup = 10
    var threads = 0
    var computeUnits: [ComputeUnitChoice] = ComputeUnitChoice.allCases
    var label = ""
    var outDir = "results"
    var runID = ""
    var etdump = false
    var cleanup = false

    /// Documents/<out-dir>/<run-id>/: the results, then status.json, which run_benchmark.sh waits for.
    var resultDirectory: URL {
        ModelStore.resolve(outDir).appendingPathComponent(runID, isDirectory: true)
    }

    /// The result directory of arguments that do not parse: their --out-dir and --run-id
    /// read on their own, so that the script which passed them finds the error's
    /// status.json where it waits, at once, instead of after its timeout. Without a
    /// --run-id: <out-dir>/invalid-arguments.
    static func resultDirectory(forUnparsable arguments: [String]) -> URL {
        func value(after flag: String) -> String? {
            guard let i = arguments.lastIndex(of: flag), arguments.indices.contains(i + 1) else { return nil }
            return arguments[i + 1]
        }
        var o = HeadlessOptions()
        o.outDir = value(after: "--out-dir") ?? o.outDir
        o.runID = value(after: "--run-id") ?? "invalid-arguments"
        return o.resultDirectory
    }

    /// Nil when the app was not started with --headless.
    static func parse(_ arguments: [String]) throws -> HeadlessOptions? {
        guard arguments.contains("--headless") else { return nil }
        var o = HeadlessOptions()
        var it = arguments.dropFirst().makeIterator()
        func value(_ flag: String) throws -> String {
            guard let v = it.next() else { throw BenchError.message("\(flag) needs a value") }
            return v
        }
        func int(_ flag: String, min: Int) throws -> Int {
            let text = try value(flag)
            guard let v = Int(text), v >= min else {
                throw BenchError.message("\(flag) needs a whole number >= \(min), got '\(text)'")
            }
            return v
        }
        while let arg = it.next() {
            switch arg {
            case "--headless", "--": break
            case "--model": o.model = try value(arg)
            case "--iters": o.iterations = try int(arg, min: 1)
            case "--warmup": o.warmup = try int(arg, min: 0)
            case "--threads": o.threads = try int(arg, min: 0)
            case "--label": o.label = try value(arg)
            case "--out-dir": o.outDir = try value(arg)
            case "--run-id": o.runID = try value(arg)
            case "--etdump": o.etdump = true
            case "--cleanup": o.cleanup = true
            case "--compute-units":
                let v = try value(arg)
                if v == "every" {
                    o.computeUnits = ComputeUnitChoice.allCases
                } else {
                    o.computeUnits = try v.split(separator: ",").map { name in
                        guard let unit = ComputeUnitChoice(rawValue: String(name)) else {
                            throw BenchError.message("unknown compute unit '\(name)'")
                        }
                        return unit
                    }
                }
            default:
                // Xcode and the system add their own (-NSDocumentRevisionsDebugMode ...).
                if arg.hasPrefix("--") { throw BenchError.message("unknown option \(arg)") }
            }
        }
        if o.model.isEmpty { throw BenchError.message("--model is required") }
        if o.runID.isEmpty { o.runID = String(Int(Date().timeIntervalSince1970)) }
        return o
    }
}

enum HeadlessRunner {
    /// Runs everything `options` asks for and writes the results and status.json.
    /// Never throws: failures end up in status.json and the log.
    static func run(_ options: HeadlessOptions) async {
        let dir = options.resultDirectory
        var files: [String] = []
        var failure: String?
        do {
            let model = ModelStore.resolve(options.model)
            let stem = model.deletingPathExtension().lastPathComponent
            if model.pathExtension.lowercased() == "pte" {
                var s = ExecuTorchBenchmark.Settings()
                s.iterations = options.iterations
                s.warmup = options.warmup
                s.threads = options.threads
                s.label = options.label
                if options.etdump { s.etdump = dir.appendingPathComponent("\(stem).etdp") }
                if s.etdump != nil {
                    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                }
                let json = try ExecuTorchBenchmark.run(model: model, settings: s)
                try ModelStore.write(json, to: dir.appendingPathComponent("\(stem).json"))
                files.append("\(stem).json")
                if s.etdump != nil { files.append("\(stem).etdp") }
            } else {
                var s = CoreMLBenchmark.Settings()
                s.iterations = options.iterations
                s.warmup = options.warmup
                s.label = options.label
                for units in options.computeUnits {
                    let json = try await CoreMLBenchmark.run(model: model, units: units, settings: s)
                    let name = "\(stem).\(units.rawValue).json"
                    try ModelStore.write(json, to: dir.appendingPathComponent(name))
                    files.append(name)
                    NSLog("MFBENCH_RESULT %@ %@", units.rawValue, name)
                }
            }
            if options.cleanup {
                let inbox = ModelStore.documents.appendingPathComponent("inbox").standardizedFileURL.path + "/"
                let folder = model.deletingLastPathComponent().standardizedFileURL
                if (folder.path + "/").hasPrefix(inbox) { try? FileManager.default.removeItem(at: folder) }
            }
        } catch {
            failure = error.localizedDescription
        }
        writeStatus(dir: dir, files: files, error: failure)
    }

    static func writeStatus(dir: URL, files: [String], error: String?) {
        let status = JSONValue.object([
            ("ok", .bool(error == nil)),
            ("files", .array(files.map { .string($0) })),
            ("error", .optional(error)),
        ])
        if let error { NSLog("MFBENCH_ERROR %@", error) } else { NSLog("MFBENCH_DONE %@", dir.path) }
        do {
            try ModelStore.write(status.serialized(), to: dir.appendingPathComponent("status.json"))
        } catch {
            NSLog("MFBENCH_ERROR cannot write status.json: %@", error.localizedDescription)
        }
    }
}
