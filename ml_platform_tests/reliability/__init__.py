"""The reliability suite: real faults on real components, each asserting the platform's promises."""
