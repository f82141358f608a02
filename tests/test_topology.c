#include "config.h"
#include "util.h"
int main(void){return 77;}
