package android.content;

import java.io.File;

/** Stand-in for the two android.content.Context getters ModelFiles uses. */
public abstract class Context {
    public abstract File getExternalFilesDir(String type);

    public abstract File getFilesDir();
}
