"""aos/domain"""
