"""aos/ports"""
