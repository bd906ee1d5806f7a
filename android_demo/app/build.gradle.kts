import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
    alias(libs.plugins.kotlin.compose)
}

// Two ways to get ExecuTorch, chosen at build time:
//
//  * always: the release AAR org.pytorch:executorch-android (Java/Kotlin Module
//    API + its own libexecutorch.so). The app times whole-model latency through
//    it. That .so exports only its JNI entry points and is built without the
//    event tracer, so it can neither be linked by our C++ nor give per-operator
//    times.
//  * optional: -PexecutorchAndroidRoot=<prefix> (or EXECUTORCH_ANDROID_ROOT) =
//    the install prefix of ExecuTorch built from source for Android with
//    EXECUTORCH_BUILD_DEVTOOLS=ON and EXECUTORCH_ENABLE_EVENT_TRACER=ON. Then
//    src/main/cpp/CMakeLists.txt compiles the shared core native/mfbench against
//    it into libmfbench_jni.so, which gives per-operator times and the ETDump.
//    Those also need -PexecutorchSourceDir=<checkout> (or EXECUTORCH_SOURCE_DIR),
//    the ExecuTorch checkout the prefix was built from: its devtools ETDump
//    headers are not part of what `cmake --install` installs.
val executorchAndroidRoot: String? =
    (findProperty("executorchAndroidRoot") as String?)?.takeIf { it.isNotBlank() }
        ?: System.getenv("EXECUTORCH_ANDROID_ROOT")?.takeIf { it.isNotBlank() }
val executorchSourceDir: String =
    (findProperty("executorchSourceDir") as String?)?.takeIf { it.isNotBlank() }
        ?: System.getenv("EXECUTORCH_SOURCE_DIR").orEmpty()
val executorchAar: String? = (findProperty("executorchAar") as String?)?.takeIf { it.isNotBlank() }
// The version of an ExecuTorch built here (the source prefix, a local AAR): no file
// in either says it, so only -PexecutorchVersion=<v> does; otherwise the results
// record runtime.version null rather than the Maven AAR's version.
val localExecutorchVersion: String = (findProperty("executorchVersion") as String?)?.trim().orEmpty()
val aarExecutorchVersion: String = if (executorchAar == null) libs.versions.executorch.get() else localExecutorchVersion
// Per-operator times from the native core (default): its CMake build stops when the
// prefix has no event tracer; false builds it latency-only.
val perOperator: Boolean = (findProperty("mobileformer.perOperator") as String?)?.toBooleanStrict() ?: true
val abis: List<String> =
    ((findProperty("mobileformer.abis") as String?) ?: "arm64-v8a,x86_64")
        .split(",").map { it.trim() }.filter { it.isNotEmpty() }
val appVersion = "0.1.0"

android {
    namespace = "org.mobileformer.demo"
    compileSdk = 35
    ndkVersion = libs.versions.ndk.get()

    defaultConfig {
        applicationId = "org.mobileformer.demo"
        minSdk = 26
        targetSdk = 35
        versionCode = 1
        versionName = appVersion

        buildConfigField("String", "EXECUTORCH_VERSION", "\"$aarExecutorchVersion\"")
        buildConfigField("boolean", "HAS_NATIVE_CORE", (executorchAndroidRoot != null).toString())

        ndk { abiFilters += abis }

        if (executorchAndroidRoot != null) {
            externalNativeBuild {
                cmake {
                    arguments += listOf(
                        "-DEXECUTORCH_ANDROID_ROOT=$executorchAndroidRoot",
                        "-DEXECUTORCH_SOURCE_DIR=$executorchSourceDir",
                        "-DANDROID_STL=c++_shared",
                        "-DMFBENCH_APP_VERSION=$appVersion",
                        "-DMFBENCH_EXECUTORCH_VERSION=$localExecutorchVersion",
                        "-DMFBENCH_PER_OPERATOR=${if (perOperator) "ON" else "OFF"}",
                    )
                }
            }
        }
    }

    if (executorchAndroidRoot != null) {
        externalNativeBuild {
            cmake {
                path = file("src/main/cpp/CMakeLists.txt")
                version = libs.versions.cmake.get()
            }
        }
    }

    buildTypes {
        release {
            // Benchmark the release build; it is signed with the debug key so
            // `installRelease` works without a keystore.
            isMinifyEnabled = false
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"), "proguard-rules.pro")
            signingConfig = signingConfigs.getByName("debug")
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    buildFeatures {
        compose = true
        buildConfig = true
    }

    packaging {
        jniLibs {
            // fbjni (via the AAR) and our native core both bring the NDK's shared STL.
            pickFirsts += "**/libc++_shared.so"
        }
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

dependencies {
    if (executorchAar != null) {
        implementation(files(executorchAar))
        implementation(libs.fbjni)
        implementation(libs.soloader.nativeloader)
    } else {
        implementation(libs.executorch.android)
    }
    implementation(libs.androidx.core.ktx)
    implementation(libs.androidx.activity.compose)
    implementation(libs.androidx.lifecycle.runtime.compose)
    implementation(libs.androidx.lifecycle.viewmodel.compose)
    implementation(platform(libs.androidx.compose.bom))
    implementation(libs.androidx.compose.ui)
    implementation(libs.androidx.compose.ui.tooling.preview)
    implementation(libs.androidx.compose.material3)
    implementation(libs.kotlinx.coroutines.android)
}
