package org.mobileformer.demo.ui

import androidx.compose.foundation.background
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Box
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.height
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.layout.width
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.text.font.FontWeight
import androidx.compose.ui.text.style.TextAlign
import androidx.compose.ui.text.style.TextOverflow
import androidx.compose.ui.unit.dp
import org.mobileformer.demo.bench.BlockTime

/** Horizontal bars, one per block (or operator type), length proportional to ms. */
@Composable
fun BarChart(bars: List<BlockTime>, modifier: Modifier = Modifier) {
    val max = bars.maxOfOrNull { it.ms }?.takeIf { it > 0 } ?: 1.0
    Column(modifier, verticalArrangement = Arrangement.spacedBy(4.dp)) {
        for (bar in bars) {
            Row(verticalAlignment = Alignment.CenterVertically) {
                Text(
                    bar.name, Modifier.width(120.dp), style = MaterialTheme.typography.bodySmall,
                    maxLines = 1, overflow = TextOverflow.Ellipsis,
                )
                Box(Modifier.weight(1f).height(14.dp)) {
                    Box(
                        Modifier
                            .fillMaxWidth((bar.ms / max).toFloat().coerceIn(0.005f, 1f))
                            .height(14.dp)
                            .background(MaterialTheme.colorScheme.primary),
                    )
                }
                Text(
                    "%.3f".format(bar.ms), Modifier.width(64.dp).padding(start = 4.dp),
                    style = MaterialTheme.typography.bodySmall, textAlign = TextAlign.End,
                )
            }
        }
    }
}

/** The same numbers as a table: name, operators, ms, share of the summed time. */
@Composable
fun BlockTable(bars: List<BlockTime>, firstColumn: String, modifier: Modifier = Modifier) {
    val total = bars.sumOf { it.ms }.takeIf { it > 0 } ?: 1.0
    Column(modifier) {
        TableRow(firstColumn, "ops", "ms", "%", header = true)
        for (bar in bars) {
            TableRow(bar.name, bar.operators.toString(), "%.3f".format(bar.ms), "%.1f".format(100 * bar.ms / total))
        }
    }
}

@Composable
private fun TableRow(name: String, ops: String, ms: String, share: String, header: Boolean = false) {
    val style = MaterialTheme.typography.bodySmall.let { if (header) it.copy(fontWeight = FontWeight.Bold) else it }
    Row(Modifier.fillMaxWidth().padding(vertical = 2.dp)) {
        Text(name, Modifier.weight(1f), style = style, maxLines = 2, overflow = TextOverflow.Ellipsis)
        Text(ops, Modifier.width(40.dp), style = style, textAlign = TextAlign.End)
        Text(ms, Modifier.width(72.dp), style = style, textAlign = TextAlign.End)
        Text(share, Modifier.width(48.dp), style = style, textAlign = TextAlign.End)
    }
}
