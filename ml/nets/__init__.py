"""Networks: generator, regressors, the landmark network and its features, parser, identity, MTCNN, VGG, parameter encoding."""
