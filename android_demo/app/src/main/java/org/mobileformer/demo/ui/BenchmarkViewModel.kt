package org.mobileformer.demo.ui

import android.app.Application
import androidx.lifecycle.AndroidViewModel
import androidx.lifecycle.viewModelScope
import java.io.File
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import org.mobileformer.demo.bench.BenchmarkEngine
import org.mobileformer.demo.bench.BenchmarkException
import org.mobileformer.demo.bench.BenchmarkRequest
import org.mobileformer.demo.bench.EngineChoice
import org.mobileformer.demo.bench.ModelFiles
import org.mobileformer.demo.bench.ResultSummary

data class UiState(
    val models: List<String> = emptyList(),
    val modelPath: String = "",
    val iterations: String = "50",
    val warmup: String = "10",
    val threads: String = "4",
    val engines: List<EngineChoice> = BenchmarkEngine.available(),
    val engine: EngineChoice = BenchmarkEngine.available().first(),
    val running: Boolean = false,
    val error: String? = null,
    val result: ResultSummary? = null,
) {
    val engineTitle: String get() = runCatching { BenchmarkEngine.pick(engine).title }.getOrDefault(engine.id)
    val perOperator: Boolean get() = runCatching { BenchmarkEngine.pick(engine).perOperator }.getOrDefault(false)
}

class BenchmarkViewModel(app: Application) : AndroidViewModel(app) {
    private val _state = MutableStateFlow(UiState())
    val state: StateFlow<UiState> = _state.asStateFlow()

    init {
        refreshModels()
    }

    fun refreshModels() {
        val found = ModelFiles.findModels(getApplication()).map { it.path }
        _state.update { s -> s.copy(models = found, modelPath = s.modelPath.ifBlank { found.firstOrNull().orEmpty() }) }
    }

    fun edit(transform: (UiState) -> UiState) = _state.update(transform)

    /** Runs the benchmark on a background dispatcher; the UI stays responsive. */
    fun run() {
        val s = _state.value
        if (s.running) return
        val request = try {
            BenchmarkRequest(
                modelPath = s.modelPath.trim(),
                iterations = number("iterations", s.iterations),
                warmup = number("warm-up", s.warmup),
                threads = number("threads", s.threads),
                engine = s.engine,
            ).also { it.validate() }
        } catch (e: BenchmarkException) {
            _state.update { it.copy(error = e.message) }
            return
        }
        _state.update { it.copy(running = true, error = null) }
        viewModelScope.launch {
            val outcome = withContext(Dispatchers.Default) {
                runCatching {
                    val json = BenchmarkEngine.pick(request.engine).run(request)
                    val model = File(request.modelPath)
                    val out = File(resultsDir(), "${model.nameWithoutExtension}-${System.currentTimeMillis()}.json")
                    ModelFiles.writeAtomic(out, json)
                    ResultSummary.parse(json, ModelFiles.manifestFor(model)).copy(savedTo = out)
                }
            }
            _state.update { st ->
                outcome.fold(
                    onSuccess = { st.copy(running = false, result = it) },
                    onFailure = { st.copy(running = false, error = it.message ?: it.toString()) },
                )
            }
        }
    }

    private fun resultsDir(): File {
        val app = getApplication<Application>()
        return File(app.getExternalFilesDir(null) ?: app.filesDir, "results")
    }

    private fun number(what: String, text: String): Int =
        text.trim().toIntOrNull() ?: throw BenchmarkException("$what must be a whole number, got '$text'")
}
