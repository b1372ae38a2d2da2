"""The segment model: rule-tree nodes, YAML in and out, validation, plain words, editing, saved segments."""
