import Foundation

/// A bar of the chart: a paper block, an operator type, or a Core ML op type.
struct BlockBar: Identifiable {
    let name: String
    let value: Double
    let operators: Int
    var id: String { name }
}

/// Per-block numbers from per-operator ones (docs/latency-format.md, "Mapping
/// operators to blocks"), the same rule as android_demo and quant.report.
enum Blocks {
    static let unmapped = "(outside the listed delegates)"

    /// `profiling.delegate_blocks` of the export manifest beside the model:
    /// `<stem>.manifest.json`, else `manifest.json`. Nil if there is none.
    static func delegateBlocks(forModel model: URL) -> [String]? {
        let dir = model.deletingLastPathComponent()
        let stem = model.deletingPathExtension().lastPathComponent
        for name in ["\(stem).manifest.json", "manifest.json"] {
            let url = dir.appendingPathComponent(name)
            guard let data = try? Data(contentsOf: url),
                  let doc = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            else { continue }
            let profiling = doc["profiling"] as? [String: Any]
            return profiling?["delegate_blocks"] as? [String]
        }
        return nil
    }

    /// ExecuTorch: mean_ms summed per block (delegate_index -> block name), in
    /// execution order; without delegate blocks, per operator name, largest first.
    static func executorchBars(_ ops: [OperatorRow], delegateBlocks: [String]?) -> [BlockBar] {
        guard let blocks = delegateBlocks, !blocks.isEmpty else {
            return grouped(ops, key: { $0.name }, value: { $0.meanMs })
        }
        var order: [String] = []
        var sums: [String: (Double, Int)] = [:]
        for op in ops.sorted(by: { $0.index < $1.index }) {
            var name = unmapped
            if let d = op.delegateIndex, d >= 0, d < blocks.count { name = blocks[d] }
            if sums[name] == nil { order.append(name) }
            let (ms, n) = sums[name] ?? (0, 0)
            sums[name] = (ms + op.meanMs, n + 1)
        }
        return order.map { BlockBar(name: $0, value: sums[$0]!.0, operators: sums[$0]!.1) }
    }

    /// Core ML: estimated cost (share of the model's work, in %) summed per MIL op type.
    static func coreMLBars(_ ops: [OperatorRow]) -> [BlockBar] {
        grouped(ops.filter { $0.estimatedCost != nil },
                key: { String($0.name.split(separator: " ").first ?? "?") },
                value: { 100 * ($0.estimatedCost ?? 0) })
    }

    private static func grouped(_ ops: [OperatorRow], key: (OperatorRow) -> String,
                                value: (OperatorRow) -> Double) -> [BlockBar] {
        Dictionary(grouping: ops, by: key)
            .map { BlockBar(name: $0.key, value: $0.value.map(value).reduce(0, +), operators: $0.value.count) }
            .sorted { $0.value > $1.value }
    }
}
