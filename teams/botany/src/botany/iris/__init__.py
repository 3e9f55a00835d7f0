"""The iris model: scikit-learn's bundled iris data and a random forest (the course module's example)."""
