"""The store's schema catalog: attributes, event types, fields, entities, their types and indexes."""
