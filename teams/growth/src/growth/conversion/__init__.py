"""The conversion model: will a retail session end in a purchase? Gradient boosting, five regions."""
