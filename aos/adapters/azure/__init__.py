"""aos/adapters/azure"""
