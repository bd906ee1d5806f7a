package org.mobileformer.demo

import android.os.Bundle
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Surface
import org.mobileformer.demo.ui.BenchmarkScreen

/** The interactive screen; the headless run is [BenchmarkActivity]. */
class MainActivity : ComponentActivity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContent {
            MaterialTheme {
                Surface {
                    BenchmarkScreen()
                }
            }
        }
    }
}
