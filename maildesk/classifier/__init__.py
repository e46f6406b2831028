"""Models that learn from labelled mail: the spam model, and saving and loading models safely."""
