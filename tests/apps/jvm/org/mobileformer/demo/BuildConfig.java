package org.mobileformer.demo;

/** What Gradle generates (app/build.gradle.kts, buildConfigField), for a build without the native core. */
public final class BuildConfig {
    public static final String VERSION_NAME = "0.1.0";
    public static final String EXECUTORCH_VERSION = "1.5.1";
    public static final boolean HAS_NATIVE_CORE = false;
}
