"""Prompt templates as data files, validated against the strategy that uses them."""

from .template import Template, TemplateSchema, load_template, template_names

__all__ = ["Template", "TemplateSchema", "load_template", "template_names"]
