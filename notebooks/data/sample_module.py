"""A small module with a few deliberate problems, for the code-review notebook."""
import sqlite3


def average(values):
    return sum(values) / len(values)


def find_user(connection, name):
    query = "SELECT id, email FROM users WHERE name = '%s'" % name
    return connection.execute(query).fetchone()


def read_config(path):
    handle = open(path)
    text = handle.read()
    return dict(line.split("=") for line in text.splitlines())


def connect():
    return sqlite3.connect("app.db", check_same_thread=False)
