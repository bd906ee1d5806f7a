import Charts
import SwiftUI

/// One result: latency numbers, a bar chart and a table per block / op type.
struct ResultView: View {
    let result: ResultSummary
    let model: URL?

    private var isCoreML: Bool { result.runtime == "coreml" }

    private var bars: [BlockBar] {
        if isCoreML { return Blocks.coreMLBars(result.operators) }
        let delegateBlocks = model.flatMap { Blocks.delegateBlocks(forModel: $0) }
        return Blocks.executorchBars(result.operators, delegateBlocks: delegateBlocks)
    }

    private var unit: String { isCoreML ? "% est." : "ms" }

    var body: some View {
        let l = result.latency
        VStack(alignment: .leading, spacing: 4) {
            Text(String(format: "p50 %.3f ms   p90 %.3f ms", l.p50, l.p90)).font(.headline)
            Text(String(format: "mean %.3f   min %.3f   max %.3f ms · %d runs", l.mean, l.min, l.max,
                        result.iterations))
                .font(.footnote)
            Text(result.tool + (result.computeUnits.map { " · \($0)" } ?? "")).font(.caption)
                .foregroundStyle(.secondary)
            if let url = result.savedTo {
                Text("Saved: Documents/" + ModelStore.displayName(url)).font(.caption).foregroundStyle(.secondary)
            }
        }
        let shown = Array(bars.prefix(24))
        if shown.isEmpty {
            Text(isCoreML ? "No MLComputePlan data (needs iOS 17.4 and an ML Program)."
                          : "No per-operator times in this result.")
                .font(.footnote).foregroundStyle(.secondary)
        } else {
            Chart(shown) { bar in
                BarMark(x: .value(unit, bar.value), y: .value("block", bar.name))
            }
            .chartXAxisLabel(unit)
            .frame(height: CGFloat(shown.count) * 22 + 40)
            ForEach(shown) { bar in
                HStack {
                    Text(bar.name).lineLimit(1)
                    Spacer()
                    Text("\(bar.operators) ops").foregroundStyle(.secondary)
                    Text(String(format: "%.3f %@", bar.value, unit)).monospacedDigit()
                }
                .font(.caption)
            }
        }
    }
}
