"""Reading flow files: the YAML loader with positions and its YAML 1.2 scalars."""
