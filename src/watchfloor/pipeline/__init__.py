"""The pipeline: source -> normalise -> match -> score -> persist (+cursor) -> notify."""
