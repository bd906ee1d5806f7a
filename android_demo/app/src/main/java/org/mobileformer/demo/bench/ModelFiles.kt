package org.mobileformer.demo.bench

import android.content.Context
import java.io.File
import java.io.FileOutputStream
import java.io.IOException
import java.security.MessageDigest
import org.json.JSONObject

/** Where models are looked for, files are hashed, and results are written. */
object ModelFiles {
    /** The directory run_benchmark.sh pushes to (readable by apps, not listable on every device). */
    const val DEVICE_TMP_DIR = "/data/local/tmp/mobileformer"

    /** Directories the UI lists `.pte` files from, in this order. */
    fun searchDirs(context: Context): List<File> = listOfNotNull(
        context.getExternalFilesDir(null),
        context.filesDir,
        File(DEVICE_TMP_DIR),
    )

    /** `.pte` files found in [searchDirs] (unlistable directories are skipped). */
    fun findModels(context: Context): List<File> =
        searchDirs(context).flatMap { dir ->
            dir.listFiles { f -> f.isFile && f.name.endsWith(".pte") }?.sortedBy { it.name } ?: emptyList()
        }

    /**
     * The export manifest of [model]: `<stem>.manifest.json` beside it (what
     * run_benchmark.sh pushes), else `manifest.json` in the same directory (what
     * `python -m quant.export` writes next to its artifacts).
     */
    fun manifestFor(model: File): File? {
        val dir = model.absoluteFile.parentFile ?: return null
        return listOf(File(dir, model.nameWithoutExtension + ".manifest.json"), File(dir, "manifest.json"))
            .firstOrNull { it.isFile && it.canRead() }
    }

    /** `input.shape` of an export manifest, or null when it has none or cannot be read. */
    fun inputShape(manifest: File): LongArray? = try {
        val dims = JSONObject(manifest.readText()).optJSONObject("input")?.optJSONArray("shape")
        dims?.let { LongArray(it.length()) { i -> it.getLong(i) } }?.takeIf { it.isNotEmpty() }
    } catch (e: Exception) {
        null  // like ResultSummary.delegateBlocks: a bad manifest falls back to the default
    }

    /** Hex SHA-256 and size of a file, read once. */
    fun fingerprint(file: File): Artifact {
        val digest = MessageDigest.getInstance("SHA-256")
        var size = 0L
        try {
            file.inputStream().use { input ->
                val buf = ByteArray(1 shl 16)
                while (true) {
                    val n = input.read(buf)
                    if (n < 0) break
                    digest.update(buf, 0, n)
                    size += n
                }
            }
        } catch (e: IOException) {
            throw BenchmarkException("cannot open model ${file.path}: ${e.message}")
        }
        val hex = digest.digest().joinToString("") { "%02x".format(it) }
        return Artifact(file.name, hex, size)
    }

    /**
     * Writes [text] to [target] through a temporary file in the same directory,
     * flushed to disk, then renamed, so a reader (adb pull) never sees half a file.
     */
    fun writeAtomic(target: File, text: String) {
        val dir = target.absoluteFile.parentFile
        if (dir != null && !dir.isDirectory && !dir.mkdirs()) {
            throw BenchmarkException("cannot create directory $dir")
        }
        val tmp = File(dir, ".${target.name}.tmp")
        try {
            FileOutputStream(tmp).use { out ->
                out.write(text.toByteArray(Charsets.UTF_8))
                out.flush()
                out.fd.sync()
            }
            if (!tmp.renameTo(target)) throw IOException("rename to $target failed")
        } catch (e: IOException) {
            tmp.delete()
            throw BenchmarkException("cannot write $target: ${e.message}")
        }
    }
}
