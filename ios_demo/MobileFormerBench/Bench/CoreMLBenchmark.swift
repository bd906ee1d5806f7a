import CoreML
import CoreVideo
import Foundation

/// The compute units a Core ML run may use, named as the JSON's
/// `runtime.compute_units` (docs/latency-format.md).
enum ComputeUnitChoice: String, CaseIterable, Identifiable {
    case cpuOnly, cpuAndGPU, cpuAndNeuralEngine, all

    var id: String { rawValue }

    var mlComputeUnits: MLComputeUnits {
        switch self {
        case .cpuOnly: return .cpuOnly
        case .cpuAndGPU: return .cpuAndGPU
        case .cpuAndNeuralEngine: return .cpuAndNeuralEngine
        case .all: return .all
        }
    }
}

/// Core ML engine: loads a .mlpackage / .mlmodel (compiled on the device first) or
/// a .mlmodelc, times `prediction(from:)`, and describes every MIL operation with
/// MLComputePlan (iOS 17.4+): the device Core ML prefers for it and its estimated
/// share of the model's work. Core ML reports no per-operation times, so
/// `mean_ms`/`p50_ms`/`calls` are 0 and the estimate is in `estimated_cost`.
enum CoreMLBenchmark {
    struct Settings {
        var iterations = 50
        var warmup = 10
        var label = ""
    }

    /// A compiled model for `url`; .mlpackage/.mlmodel are compiled once per file
    /// version into Library/Caches/compiled.
    static func compiledModel(for url: URL) async throws -> URL {
        switch url.pathExtension.lowercased() {
        case "mlmodelc":
            return url
        case "mlpackage", "mlmodel":
            let fm = FileManager.default
            let cache = try fm.url(for: .cachesDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
                .appendingPathComponent("compiled", isDirectory: true)
            try fm.createDirectory(at: cache, withIntermediateDirectories: true)
            let stamp = (try? fm.attributesOfItem(atPath: url.path)[.modificationDate] as? Date)?
                .timeIntervalSince1970 ?? 0
            let target = cache.appendingPathComponent(
                "\(url.deletingPathExtension().lastPathComponent)-\(Int(stamp)).mlmodelc")
            if fm.fileExists(atPath: target.path) { return target }
            let compiled = try await MLModel.compileModel(at: url)
            _ = try? fm.removeItem(at: target)
            try fm.moveItem(at: compiled, to: target)
            return target
        default:
            throw BenchError.message("not a Core ML model: \(url.lastPathComponent)")
        }
    }

    /// Measures `model` on one compute-unit setting and returns the JSON document.
    static func run(model url: URL, units: ComputeUnitChoice, settings: Settings) async throws -> String {
        guard settings.iterations >= 1 else { throw BenchError.message("iterations must be at least 1") }
        guard settings.warmup >= 0 else { throw BenchError.message("warmup must not be negative") }
        let created = DeviceFacts.utcNow
        let fingerprint = try ModelStore.fingerprint(url)
        let compiled = try await compiledModel(for: url)

        let configuration = MLModelConfiguration()
        configuration.computeUnits = units.mlComputeUnits
        let model: MLModel
        do {
            model = try await MLModel.load(contentsOf: compiled, configuration: configuration)
        } catch {
            throw BenchError.message("cannot load \(url.lastPathComponent): \(error.localizedDescription)")
        }
        let inputs = try makeInputs(model.modelDescription)

        let samples: [Double]
        do {
            samples = try timePredictions(model, inputs: inputs, warmup: settings.warmup,
                                          iterations: settings.iterations)
        } catch {
            throw BenchError.message("prediction failed: \(error.localizedDescription)")
        }

        var operators: [JSONValue] = []
        if #available(iOS 17.4, *) {
            operators = try await planOperators(compiled: compiled, configuration: configuration)
        }

        let stem = url.deletingPathExtension().lastPathComponent
        let label = (settings.label.isEmpty ? stem : settings.label) + " (\(units.rawValue))"
        let doc = JSONValue.object([
            ("format", .string("mobileformer-latency/1")),
            ("created", .string(created)),
            ("tool", .string("ios_demo \(DeviceFacts.appVersion) (Core ML)")),
            ("label", .string(label)),
            ("device", DeviceFacts.json),
            ("runtime", .object([
                ("name", .string("coreml")),
                ("version", .string(DeviceFacts.osVersion)),  // Core ML ships with the OS
                ("compute_units", .string(units.rawValue)),
            ])),
            ("artifact", .object([
                ("file", .string(url.lastPathComponent)),
                ("sha256", .string(fingerprint.sha256)),
                ("size_bytes", .integer(fingerprint.size)),
                ("model", .null), ("backend", .null), ("precision", .null),
            ])),
            ("threads", .null),  // Core ML has no thread setting
            ("warmup", .integer(settings.warmup)),
            ("iterations", .integer(settings.iterations)),
            ("traced", .bool(false)),  // Core ML times no operator
            ("latency_ms", LatencyStats(samples: samples).json),
            ("samples_ms", .array(samples.map { .number($0) })),
            ("operators", .array(operators)),
            ("blocks", .array([])),
            ("etdump", .null),
        ])
        return doc.serialized()
    }

    /// Latency of each of `iterations` predictions after `warmup` untimed ones, in ms.
    /// Synchronous on purpose: inside an `async` function `prediction(from:)` and
    /// `Clock.measure` resolve to their async overloads (iOS 17), which would put a
    /// suspension point and an executor hop inside the timed region.
    static func timePredictions(_ model: MLModel, inputs: MLFeatureProvider, warmup: Int,
                                iterations: Int) throws -> [Double] {
        var samples: [Double] = []
        samples.reserveCapacity(iterations)
        let clock = ContinuousClock()
        for _ in 0..<warmup { _ = try model.prediction(from: inputs) }
        for _ in 0..<iterations {
            let elapsed = try clock.measure { _ = try model.prediction(from: inputs) }
            samples.append(milliseconds(elapsed))
        }
        return samples
    }

    /// One entry per MIL operation of `main` (nested blocks depth-first), in program
    /// order, skipping `const` ops; see docs/latency-format.md ("Core ML results").
    @available(iOS 17.4, *)
    static func planOperators(compiled: URL, configuration: MLModelConfiguration) async throws -> [JSONValue] {
        let plan = try await MLComputePlan.load(contentsOf: compiled, configuration: configuration)
        guard case let .program(program) = plan.modelStructure,
              let main = program.functions["main"] else { return [] }  // neural networks: no per-op cost
        var rows: [JSONValue] = []
        func visit(_ block: MLModelStructure.Program.Block) {
            for op in block.operations {
                if op.operatorName != "const" {
                    let usage = plan.deviceUsage(for: op)
                    let cost = plan.estimatedCost(of: op)
                    let output = op.outputs.first?.name ?? "?"
                    rows.append(.object([
                        ("index", .integer(rows.count)),
                        ("name", .string("\(op.operatorName) \(output)")),
                        ("delegate_index", .null),
                        ("block", .null),
                        ("mean_ms", .number(0)),
                        ("p50_ms", .number(0)),
                        ("calls", .integer(0)),
                        ("estimated_cost", .optional(cost?.weight)),
                        ("compute_device", .optional(usage.flatMap { deviceName($0.preferred) })),
                        ("supported_devices", .array((usage?.supported ?? []).compactMap { deviceName($0) }.map { .string($0) })),
                    ]))
                }
                op.blocks.forEach(visit)
            }
        }
        visit(main.block)
        return rows
    }

    /// The format's name of a compute device; nil for one newer than this app, which the
    /// format has no name for (written as null / left out, never as a name outside the schema).
    static func deviceName(_ device: MLComputeDevice) -> String? {
        switch device {
        case .cpu: return "cpu"
        case .gpu: return "gpu"
        case .neuralEngine: return "neuralEngine"
        @unknown default: return nil
        }
    }

    static func milliseconds(_ d: Duration) -> Double {
        let c = d.components
        return Double(c.seconds) * 1e3 + Double(c.attoseconds) / 1e15
    }

    /// Deterministic inputs for every feature `forward` takes: multi-arrays get the
    /// same xorshift pattern in [-1, 1) as native/mfbench (zeros for integers),
    /// images a mid-gray buffer of the declared size.
    static func makeInputs(_ description: MLModelDescription) throws -> MLFeatureProvider {
        var features: [String: MLFeatureValue] = [:]
        var state: UInt32 = 0x2545_F491
        func next() -> Float {
            state ^= state << 13; state ^= state >> 17; state ^= state << 5
            return Float(state >> 8) / 8_388_608 - 1
        }
        for (name, input) in description.inputDescriptionsByName.sorted(by: { $0.key < $1.key }) {
            switch input.type {
            case .multiArray:
                guard let constraint = input.multiArrayConstraint else {
                    throw BenchError.message("input \(name) has no shape")
                }
                let array = try MLMultiArray(shape: constraint.shape, dataType: constraint.dataType)
                for i in 0..<array.count {
                    switch constraint.dataType {
                    case .int32: array[i] = 0
                    default: array[i] = NSNumber(value: next())
                    }
                }
                features[name] = MLFeatureValue(multiArray: array)
            case .image:
                guard let c = input.imageConstraint else { throw BenchError.message("input \(name) has no size") }
                var buffer: CVPixelBuffer?
                let status = CVPixelBufferCreate(nil, c.pixelsWide, c.pixelsHigh, c.pixelFormatType, nil, &buffer)
                guard status == kCVReturnSuccess, let pixels = buffer else {
                    throw BenchError.message("cannot make a \(c.pixelsWide)x\(c.pixelsHigh) image for \(name)")
                }
                CVPixelBufferLockBaseAddress(pixels, [])
                if let base = CVPixelBufferGetBaseAddress(pixels) {
                    memset(base, 128, CVPixelBufferGetDataSize(pixels))
                }
                CVPixelBufferUnlockBaseAddress(pixels, [])
                features[name] = MLFeatureValue(pixelBuffer: pixels)
            default:
                throw BenchError.message("input \(name): only multi-array and image inputs are supported")
            }
        }
        return try MLDictionaryFeatureProvider(dictionary: features)
    }
}
