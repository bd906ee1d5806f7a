import CryptoKit
import Foundation

/// The app's Documents folder (shared with the Files app and Finder), the models
/// in it, and the file facts a result records.
enum ModelStore {
    static let modelExtensions: Set<String> = ["pte", "mlpackage", "mlmodelc", "mlmodel"]

    static var documents: URL {
        FileManager.default.urls(for: .documentDirectory, in: .userDomainMask)[0]
    }

    /// Resolves a path given on the command line: absolute, or relative to Documents.
    static func resolve(_ path: String) -> URL {
        path.hasPrefix("/") ? URL(fileURLWithPath: path) : documents.appendingPathComponent(path)
    }

    /// Models anywhere under Documents (packages are not descended into), sorted by path.
    static func models() -> [URL] {
        let fm = FileManager.default
        guard let walker = fm.enumerator(at: documents, includingPropertiesForKeys: [.isDirectoryKey],
                                         options: [.skipsHiddenFiles]) else { return [] }
        var found: [URL] = []
        for case let url as URL in walker {
            let ext = url.pathExtension.lowercased()
            guard modelExtensions.contains(ext) else { continue }
            found.append(url)
            if ext == "mlpackage" || ext == "mlmodelc" { walker.skipDescendants() }
        }
        return found.sorted { $0.path < $1.path }
    }

    /// Path relative to Documents for display.
    static func displayName(_ url: URL) -> String {
        let base = documents.standardizedFileURL.path + "/"
        let path = url.standardizedFileURL.path
        return path.hasPrefix(base) ? String(path.dropFirst(base.count)) : url.lastPathComponent
    }

    /// SHA-256 (hex) and size of an artifact. A file is hashed as is. A package
    /// directory (.mlpackage, .mlmodelc) is hashed over its regular files in byte-wise
    /// sorted relative-path order, each as its relative path, a NUL byte, then its
    /// bytes; size is the sum of the files' sizes (docs/latency-format.md, Core ML).
    static func fingerprint(_ url: URL) throws -> (sha256: String, size: Int) {
        var hasher = SHA256()
        var size = 0
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw BenchError.message("cannot open model \(url.path): no such file")
        }
        let files: [(String, URL)]
        if isDir.boolValue {
            files = try regularFiles(under: url)
        } else {
            files = [("", url)]
        }
        for (relative, file) in files {
            if isDir.boolValue {
                hasher.update(data: Data(relative.utf8))
                hasher.update(data: Data([0]))
            }
            let handle = try FileHandle(forReadingFrom: file)
            defer { try? handle.close() }
            while let chunk = try handle.read(upToCount: 1 << 16), !chunk.isEmpty {
                hasher.update(data: chunk)
                size += chunk.count
            }
        }
        let hex = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        return (hex, size)
    }

    private static func regularFiles(under root: URL) throws -> [(String, URL)] {
        let base = root.standardizedFileURL.path + "/"
        guard let walker = FileManager.default.enumerator(
            at: root, includingPropertiesForKeys: [.isRegularFileKey]) else { return [] }
        var out: [(String, URL)] = []
        for case let url as URL in walker {
            guard (try url.resourceValues(forKeys: [.isRegularFileKey])).isRegularFile == true else { continue }
            let path = url.standardizedFileURL.path
            out.append((path.hasPrefix(base) ? String(path.dropFirst(base.count)) : url.lastPathComponent, url))
        }
        // byte-wise order of the UTF-8 relative paths
        return out.sorted { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }
    }

    /// Writes `text` atomically (temporary file + rename) with the C++ core's writer.
    static func write(_ text: String, to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(),
                                                withIntermediateDirectories: true)
        try MFBenchBridge.writeAtomically(text, toPath: url.path)
    }
}

/// The device as a result records it; the same values native/mfbench's
/// platform.cpp reports on iOS (sysctl hw.machine, the OS version).
enum DeviceFacts {
    static var machine: String {
        var info = utsname()
        uname(&info)
        return withUnsafeBytes(of: &info.machine) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    static var osVersion: String {
        let v = ProcessInfo.processInfo.operatingSystemVersion
        return "\(v.majorVersion).\(v.minorVersion).\(v.patchVersion)"
    }

    static var json: JSONValue {
        .object([
            ("kind", .string("ios")),
            ("name", .string(machine)),
            ("os", .string("iOS \(osVersion)")),
            ("cpu", .string(machine)),
            ("cores", .integer(ProcessInfo.processInfo.activeProcessorCount)),
        ])
    }

    static var utcNow: String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: Date())
    }

    static var appVersion: String {
        Bundle.main.object(forInfoDictionaryKey: "CFBundleShortVersionString") as? String ?? "0.1.0"
    }
}
