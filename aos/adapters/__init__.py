"""aos/adapters"""
