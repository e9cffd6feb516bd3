"""Serving: export a trained run as a bundle, recommend from it, serve it over HTTP, and add new
items to it without retraining."""
