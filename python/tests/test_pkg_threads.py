"""encrypt_many / decrypt_many with threads > 1 go through the library's threaded batch calls
(cellar_cell_*_batch_threads): the same result, errors and indicator as one thread."""
import os

import pytest

import cellar


@pytest.mark.parametrize("mode", [cellar.CellMode.RANDOMIZED, cellar.CellMode.DETERMINISTIC])
def test_threads_give_the_one_thread_result(aes_key, mode):
    c = cellar.CellCipher(aes_key, mode)
    values = [os.urandom(i % 97) for i in range(5000)]
    one = c.encrypt_many(values, b"ctx")
    two = c.encrypt_many(values, b"ctx", threads=2)
    assert cellar.last_operation_approved() is (mode == cellar.CellMode.RANDOMIZED)
    assert [len(x) for x in two] == [len(x) for x in one]
    if mode == cellar.CellMode.DETERMINISTIC:
        assert two == one
    for threads in (1, 2, 8):
        assert c.decrypt_many(two, b"ctx", threads=threads) == values
        assert cellar.last_operation_approved() is (mode == cellar.CellMode.RANDOMIZED)


def test_threads_error_names_the_value(aes_key):
    c = cellar.CellCipher(aes_key, cellar.CellMode.RANDOMIZED)
    cts = c.encrypt_many([b"v%05d" % i for i in range(6000)], b"ctx", threads=2)
    cts[4321] = cts[4321][:-1] + bytes([cts[4321][-1] ^ 1])
    with pytest.raises(cellar.AuthenticationError) as e:
        c.decrypt_many(cts, b"ctx", threads=2)
    assert "value 4321" in str(e.value)
    assert cellar.last_operation_approved() is None  # a failure reports unknown
