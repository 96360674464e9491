"""Collection: pull collectors measure, the push collector drains what the application sent."""
