"""aos/services"""
