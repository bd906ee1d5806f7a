import Foundation

/// A JSON value whose objects keep their key order, so the files this app writes
/// read like native/mfbench's (docs/latency-format.md). Null is written as null.
indirect enum JSONValue {
    case object([(String, JSONValue)])
    case array([JSONValue])
    case string(String)
    case number(Double)
    case integer(Int)
    case bool(Bool)
    case null

    static func optional(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }
    static func optional(_ d: Double?) -> JSONValue { d.map { .number($0) } ?? .null }
    static func optional(_ i: Int?) -> JSONValue { i.map { .integer($0) } ?? .null }

    /// Top-level keys one per line, nested values inline.
    func serialized() -> String {
        var out = ""
        write(into: &out, depth: 0)
        return out + "\n"
    }

    private func write(into out: inout String, depth: Int) {
        switch self {
        case .object(let pairs):
            out += depth == 0 ? "{\n  " : "{"
            for (i, (key, value)) in pairs.enumerated() {
                if i > 0 { out += depth == 0 ? ",\n  " : ", " }
                out += JSONValue.quote(key) + ": "
                value.write(into: &out, depth: depth + 1)
            }
            out += depth == 0 ? "\n}" : "}"
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += ", " }
                item.write(into: &out, depth: depth + 1)
            }
            out += "]"
        case .string(let s): out += JSONValue.quote(s)
        case .number(let d): out += JSONValue.format(d)
        case .integer(let i): out += String(i)
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        }
    }

    /// At most 6 decimals, always with a decimal point; NaN and infinities become null.
    static func format(_ d: Double) -> String {
        guard d.isFinite else { return "null" }
        var s = String(format: "%.6f", locale: Locale(identifier: "en_US_POSIX"), d)
        while s.count > 1, s.hasSuffix("0"), !s.dropLast().hasSuffix(".") { s.removeLast() }
        return s
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// Latency statistics as native/mfbench computes them (numpy's linear percentiles).
struct LatencyStats {
    let p50: Double, p90: Double, mean: Double, min: Double, max: Double

    init(p50: Double, p90: Double, mean: Double, min: Double, max: Double) {
        (self.p50, self.p90, self.mean, self.min, self.max) = (p50, p90, mean, min, max)
    }

    init(samples: [Double]) {
        let sorted = samples.sorted()
        func percentile(_ q: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            let pos = q * Double(sorted.count - 1)
            let lo = Int(pos)
            let hi = Swift.min(lo + 1, sorted.count - 1)
            return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - Double(lo))
        }
        p50 = percentile(0.5)
        p90 = percentile(0.9)
        mean = sorted.isEmpty ? 0 : sorted.reduce(0, +) / Double(sorted.count)
        min = sorted.first ?? 0
        max = sorted.last ?? 0
    }

    var json: JSONValue {
        .object([("p50", .number(p50)), ("p90", .number(p90)), ("mean", .number(mean)),
                 ("min", .number(min)), ("max", .number(max))])
    }
}

/// One operator as the UI needs it (either engine).
struct OperatorRow: Identifiable {
    let index: Int
    let name: String
    let delegateIndex: Int?
    let meanMs: Double
    /// Core ML only: share of the whole model's work per MLComputePlan, 0...1.
    let estimatedCost: Double?
    /// Core ML only: the device MLComputePlan prefers for it.
    let computeDevice: String?
    var id: Int { index }
}

/// What the UI shows of one mobileformer-latency/1 document.
struct ResultSummary: Identifiable {
    let id = UUID()
    let json: String
    let label: String
    let tool: String
    let runtime: String
    let computeUnits: String?
    let latency: LatencyStats
    let iterations: Int
    let operators: [OperatorRow]
    /// Whole-model figures from a runtime that times every operator (docs/latency-format.md).
    let traced: Bool
    var savedTo: URL?
    /// The model the result measured: its manifest maps operators to blocks.
    var model: URL?

    /// Reads what the UI needs from a document written by either engine.
    static func parse(_ json: String) throws -> ResultSummary {
        guard let data = json.data(using: .utf8),
              let doc = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              doc["format"] as? String == "mobileformer-latency/1",
              let lat = doc["latency_ms"] as? [String: Any]
        else { throw BenchError.message("not a mobileformer-latency/1 document") }
        let samples = (doc["samples_ms"] as? [NSNumber]) ?? []
        let runtime = doc["runtime"] as? [String: Any]
        let ops = ((doc["operators"] as? [[String: Any]]) ?? []).enumerated().map { i, op in
            OperatorRow(
                index: op["index"] as? Int ?? i,
                name: op["name"] as? String ?? "?",
                delegateIndex: op["delegate_index"] as? Int,
                meanMs: (op["mean_ms"] as? NSNumber)?.doubleValue ?? 0,
                estimatedCost: (op["estimated_cost"] as? NSNumber)?.doubleValue,
                computeDevice: op["compute_device"] as? String)
        }
        func ms(_ key: String) -> Double { (lat[key] as? NSNumber)?.doubleValue ?? 0 }
        let stats = LatencyStats(p50: ms("p50"), p90: ms("p90"), mean: ms("mean"), min: ms("min"), max: ms("max"))
        return ResultSummary(
            json: json,
            label: doc["label"] as? String ?? "",
            tool: doc["tool"] as? String ?? "",
            runtime: runtime?["name"] as? String ?? "",
            computeUnits: runtime?["compute_units"] as? String,
            latency: stats,
            iterations: doc["iterations"] as? Int ?? samples.count,
            operators: ops,
            traced: doc["traced"] as? Bool ?? false,
            savedTo: nil,
            model: nil)
    }
}

enum BenchError: LocalizedError {
    case message(String)
    var errorDescription: String? {
        switch self {
        case .message(let m): return m
        }
    }
}
