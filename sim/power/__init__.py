"""Energy and area of SpAtten from the hwcomponents component models (CACTI, Aladdin)."""
