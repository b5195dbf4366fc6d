"""Golden models: numpy, bit-accurate fixed point, no hardware imports."""
