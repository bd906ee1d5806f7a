package org.mobileformer.demo.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.foundation.text.KeyboardOptions
import androidx.compose.material3.Button
import androidx.compose.material3.Card
import androidx.compose.material3.ExperimentalMaterial3Api
import androidx.compose.material3.FilterChip
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.text.input.KeyboardType
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import androidx.lifecycle.viewmodel.compose.viewModel
import java.io.File
import org.mobileformer.demo.bench.ModelFiles
import org.mobileformer.demo.bench.ResultSummary

/** One screen: model, settings, Run, and the result as numbers, bars and a table. */
@OptIn(ExperimentalMaterial3Api::class)  // FilterChip in older Material 3 releases
@Composable
fun BenchmarkScreen(vm: BenchmarkViewModel = viewModel()) {
    val state by vm.state.collectAsStateWithLifecycle()
    LazyColumn(
        Modifier.fillMaxSize().padding(16.dp),
        verticalArrangement = Arrangement.spacedBy(12.dp),
    ) {
        item { Text("MobileFormer Bench", style = MaterialTheme.typography.headlineSmall) }

        item {
            Column {
                Text("Model (.pte)", style = MaterialTheme.typography.titleSmall)
                OutlinedTextField(
                    value = state.modelPath,
                    onValueChange = { v -> vm.edit { it.copy(modelPath = v) } },
                    label = { Text("path") },
                    singleLine = true,
                    modifier = Modifier.fillMaxWidth(),
                )
                Text(
                    "Found in the app's files dirs and ${ModelFiles.DEVICE_TMP_DIR} " +
                        "(that one may not be listable: type the path).",
                    style = MaterialTheme.typography.bodySmall,
                )
                TextButton(onClick = vm::refreshModels) { Text("Refresh list") }
            }
        }
        items(state.models) { path ->
            FilterChip(
                selected = path == state.modelPath,
                onClick = { vm.edit { it.copy(modelPath = path) } },
                label = { Text(File(path).name) },
            )
        }

        item {
            Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                NumberField("iterations", state.iterations, Modifier.weight(1f)) { v -> vm.edit { it.copy(iterations = v) } }
                NumberField("warm-up", state.warmup, Modifier.weight(1f)) { v -> vm.edit { it.copy(warmup = v) } }
                NumberField("threads", state.threads, Modifier.weight(1f)) { v -> vm.edit { it.copy(threads = v) } }
            }
        }

        item {
            Column {
                Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                    for (choice in state.engines) {
                        FilterChip(
                            selected = choice == state.engine,
                            onClick = { vm.edit { it.copy(engine = choice) } },
                            label = { Text(choice.id) },
                        )
                    }
                }
                Text("Engine: ${state.engineTitle}", style = MaterialTheme.typography.bodySmall)
                if (!state.perOperator) {
                    Text(
                        "Whole-model latency only. Per-operator and per-block times need ExecuTorch built " +
                            "from source with the event tracer (EXECUTORCH_BUILD_DEVTOOLS=ON, " +
                            "EXECUTORCH_ENABLE_EVENT_TRACER=ON) and this app built with " +
                            "-PexecutorchAndroidRoot; the release AAR has no event tracer.",
                        style = MaterialTheme.typography.bodySmall,
                        color = MaterialTheme.colorScheme.secondary,
                    )
                }
            }
        }

        item {
            Column {
                Row(verticalAlignment = Alignment.CenterVertically) {
                    Button(onClick = vm::run, enabled = !state.running && state.modelPath.isNotBlank()) {
                        Text(if (state.running) "Running…" else "Run")
                    }
                }
                if (state.running) {
                    // A still screen: an animation would take CPU/GPU time from the run it
                    // measures. Results to report come from run_benchmark.sh (headless).
                    Text(MEASURING_NOTE, style = MaterialTheme.typography.bodyMedium)
                }
                state.error?.let {
                    Text(it, color = MaterialTheme.colorScheme.error, style = MaterialTheme.typography.bodyMedium)
                }
            }
        }

        state.result?.let { result -> item { ResultCard(result) } }
    }
}

@Composable
private fun NumberField(label: String, value: String, modifier: Modifier, onChange: (String) -> Unit) {
    OutlinedTextField(
        value = value,
        onValueChange = { v -> onChange(v.filter { it.isDigit() }) },
        label = { Text(label) },
        singleLine = true,
        keyboardOptions = KeyboardOptions(keyboardType = KeyboardType.Number),
        modifier = modifier,
    )
}

@Composable
private fun ResultCard(r: ResultSummary) {
    Card(Modifier.fillMaxWidth()) {
        Column(Modifier.padding(12.dp), verticalArrangement = Arrangement.spacedBy(8.dp)) {
            Text(r.label, style = MaterialTheme.typography.titleMedium)
            Text(
                "p50 %.3f ms   p90 %.3f ms\nmean %.3f   min %.3f   max %.3f ms".format(
                    r.latency.p50, r.latency.p90, r.latency.mean, r.latency.min, r.latency.max,
                ),
                style = MaterialTheme.typography.bodyLarge,
            )
            Text(
                "${r.iterations} runs, threads ${r.threads} · ${r.device}\n${r.tool}" +
                    if (r.traced) "\ntraced: every operator timed, not comparable with a release AAR" else "",
                style = MaterialTheme.typography.bodySmall,
            )
            r.savedTo?.let { Text("Saved: ${it.path}", style = MaterialTheme.typography.bodySmall) }
            if (r.operators.isEmpty()) {
                Text("No per-operator times in this result.", style = MaterialTheme.typography.bodySmall)
            } else {
                val what = if (r.barsAreBlocks) "Per block (manifest)" else "Per operator type (no manifest with profiling.delegate_blocks)"
                Text("$what, sum of mean ms over ${r.operators.size} operators", style = MaterialTheme.typography.titleSmall)
                BarChart(r.bars)
                BlockTable(r.bars, if (r.barsAreBlocks) "block" else "operator")
            }
        }
    }
}

/** Shown, still, while timing (no spinner: it would compete with the model for the CPU/GPU). */
const val MEASURING_NOTE =
    "Measuring… the screen stays still until it is done. For figures to report, use the " +
    "headless run (run_benchmark.sh): nothing else draws while it measures."
