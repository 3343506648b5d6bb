# -*- coding: utf-8 -*-
"""`mysql_native_password`: MySQL's native password hash of a password, as the database role of
provision computes it on the controller (roles/database, src/modules/mysql.ts): `*` and the upper-case
hex of SHA1(SHA1(password)). Accounts are created with `IDENTIFIED WITH mysql_native_password AS
'<hash>'`, so the clear password never reaches the database server (nor its binary log)."""
import hashlib


def mysql_native_password(password):
    inner = hashlib.sha1(str(password).encode('utf-8')).digest()
    return '*' + hashlib.sha1(inner).hexdigest().upper()


class FilterModule(object):
    def filters(self):
        return {'mysql_native_password': mysql_native_password}
