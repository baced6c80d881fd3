"""aos/api"""
