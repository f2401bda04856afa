"""immute.client"""
