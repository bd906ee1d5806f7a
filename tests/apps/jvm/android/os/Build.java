package android.os;

/** Stand-in for the fields of android.os.Build that the app's bench code reads. */
public final class Build {
    public static final String UNKNOWN = "unknown";
    public static final String MANUFACTURER = "Fake";
    public static final String MODEL = "JVM";
    public static final String HARDWARE = "host";
    public static final String SOC_MODEL = UNKNOWN;

    public static final class VERSION {
        public static final String RELEASE = "15";
        public static final int SDK_INT = 35;
    }

    public static final class VERSION_CODES {
        public static final int S = 31;
    }
}
