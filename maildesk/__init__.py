"""maildesk: an email-native help desk."""

__version__ = "0.1.0"
