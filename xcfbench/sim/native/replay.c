#include "xb.h"

int xb_replay_init(PyObject *module)
{
	return 0;
}
